-- Sets a new password hash on an existing operator account; never re-creates an account removed meanwhile.
-- KEYS[1] operators hash; ARGV[1] name, ARGV[2] password hash, ARGV[3] time (ISO).
-- Returns 1 when set, 0 when there is no such operator.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local o = cjson.decode(v)
o.hash = ARGV[2]
o.password_changed_at = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(o))
return 1
