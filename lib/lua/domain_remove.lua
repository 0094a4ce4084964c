-- Removes a tenant's sender domain: its entry, and its ownership when it was verified for this tenant
-- (lib/domains.ts removeDomain).
-- KEYS[1] owners HASH, KEYS[2] names ZSET, KEYS[3] the tenant's domains HASH; ARGV[1] slug, ARGV[2] domain,
-- ARGV[3] its ZSET member. Returns 1 when removed, 0 when the tenant has no such domain.
if redis.call('HDEL', KEYS[3], ARGV[2]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 1
