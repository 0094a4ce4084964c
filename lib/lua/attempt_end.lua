-- The outcome of an attempt counted by attempt_login. KEYS as there; ARGV[1] 'ok' (right password) or 'fail'.
-- A failure stays counted. A success takes its own attempt back from the login counter (never below zero, never
-- creating it) and clears this client's pair: the client has shown it knows the password. Other clients' counts
-- are not touched.
local busy = tonumber(redis.call('GET', KEYS[3]) or '0')
if busy > 1 then redis.call('DECR', KEYS[3]) elseif busy == 1 then redis.call('DEL', KEYS[3]) end
if ARGV[1] ~= 'ok' then return 0 end
redis.call('DEL', KEYS[1])
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > 0 then redis.call('DECR', KEYS[2]) end
return 1
