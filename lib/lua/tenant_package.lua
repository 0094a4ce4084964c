-- Moves a tenant to a package with its allowance, together (lib/tenants.ts changePackage), unless the tenant is
-- gone or was closed (a ban) meanwhile.
-- KEYS[1] tenant hash; ARGV[1] package name, ARGV[2] allowance in bytes, ARGV[3] updated_at.
-- Returns 1 when moved, 0 for no such tenant, -1 for a closed tenant.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == 'closed' then return -1 end
redis.call('HSET', KEYS[1], 'package', ARGV[1], 'traffic_bytes', ARGV[2], 'updated_at', ARGV[3])
return 1
