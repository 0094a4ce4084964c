-- Suspends or resumes a tenant, unless it is closed: a ban landing between a read and a write must never be undone.
-- KEYS[1] tenant hash; ARGV[1] new status (active or suspended), ARGV[2] time (ISO).
-- Returns 1 when set, 0 when the tenant does not exist, -1 when it is closed.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return 0 end
if cur == 'closed' then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
return 1
