-- Adds an IP to the pool and bumps the pool's version in one step, so that no node's cached pool
-- (lib/pool.ts getPoolFresh) can miss the change. KEYS[1] the pool hash, KEYS[2] its version.
-- ARGV[1] the IP, ARGV[2] its entry (JSON). Returns 1 when added, 0 when the IP was already there (nothing changed).
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
