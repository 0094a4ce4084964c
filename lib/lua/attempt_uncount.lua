-- Takes back one counted attempt (a login that succeeded), never creating the key or going below zero.
-- KEYS[1] counter. Returns the count left.
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
