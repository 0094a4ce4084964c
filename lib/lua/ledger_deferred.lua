-- Counts the recipients of a message that wait (deferred) once each, however many times they are retried.
-- KEYS[1] the message's set of recipients already counted, KEYS[2] the tenant's day hash.
-- ARGV[1] lifetime of the set (s), ARGV[2] lifetime of the day hash when it has none yet (s), ARGV[3] the field
-- to count in (deferred, dsn_deferred, ...), ARGV[4..] the recipients deferred by this attempt.
-- Returns how many were counted now.
local added = 0
for i = 4, #ARGV do
  added = added + redis.call('SADD', KEYS[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if added > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], added)
  redis.call('EXPIRE', KEYS[2], ARGV[2], 'NX')
end
return added
