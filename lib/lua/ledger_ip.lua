-- One delivery attempt in the source IP's hour hash (lib/ledger.ts recordAttempt): one call instead of a pipeline
-- of five commands. KEYS[1] the hour hash. ARGV[1] its lifetime (s), ARGV[2..] field, increment pairs.
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
