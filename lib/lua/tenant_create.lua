-- Creates a tenant and its first credential together, or nothing at all.
-- KEYS[1] tenant hash, KEYS[2] credentials hash; ARGV[1] local part, ARGV[2] password hash, ARGV[3..] field/value pairs.
-- Returns 1 when created, 0 when the tenant exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
