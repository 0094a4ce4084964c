-- Counts one event in a fixed window: INCR, and EXPIRE on the first event, in one round trip.
-- KEYS[1] counter; ARGV[1] window in seconds. Returns the count.
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
