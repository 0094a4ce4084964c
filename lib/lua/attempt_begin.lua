-- The per-client budget: counts a login attempt before the password is hashed, unless the window's budget is spent.
-- KEYS[1] counter; ARGV[1] max attempts, ARGV[2] window (s), ARGV[3] 1 = count, 0 = only look.
-- Returns {count, 0}, or {-1, ttl} when locked (a refused attempt is not counted).
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return {-1, redis.call('TTL', KEYS[1])} end
if ARGV[3] == '0' then return {n, 0} end
n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
return {n, 0}
