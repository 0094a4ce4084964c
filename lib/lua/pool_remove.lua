-- Removes an IP from the pool and bumps the pool's version in one step (see pool_add.lua).
-- KEYS[1] the pool hash, KEYS[2] its version. ARGV[1] the IP. Returns 1 when removed, 0 when it was not there.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
