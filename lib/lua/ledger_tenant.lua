-- One delivery attempt in the tenant's ledger (lib/ledger.ts recordAttempt): one call instead of a pipeline of up
-- to seven commands. All keys carry the tenant's hash tag (one Cluster slot).
-- KEYS[1] the tenant's day hash (shared with the quota's counters), KEYS[2] the recent attempts (ZSET),
-- KEYS[3] the domains the tenant has sent to (first attempt's time).
-- ARGV[1] the day field to count in ('' counts nothing: a deferral, or no recipient), ARGV[2] how many,
-- ARGV[3] the day hash's lifetime when it has none yet (s), ARGV[4] the attempt's time (ms, the score),
-- ARGV[5] the attempt as JSON, ARGV[6] the oldest score kept, ARGV[7] how many attempts are kept,
-- ARGV[8] the recent set's lifetime (s), ARGV[9] the destination domain ('' records none).
-- Returns 1 when this was the tenant's first attempt to the domain, else 0.
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3], 'NX')
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[7]) + 1))
redis.call('EXPIRE', KEYS[2], ARGV[8])
if ARGV[9] ~= '' then
  return redis.call('HSETNX', KEYS[3], ARGV[9], ARGV[4])
end
return 0
