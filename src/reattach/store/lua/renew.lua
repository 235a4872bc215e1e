-- Extend a producer's lease on a running job and slide the job's TTLs.
-- KEYS: job, log, steps, snap
-- ARGV: owner, lease (ms), running TTL (ms)
-- Returns {lease expiry (ms), user id}, or 0 when the job is not running or
-- another owner holds a lease that has not expired.
local state = redis.call('HMGET', KEYS[1], 'status', 'lease_owner',
  'lease_expires_at', 'user_id')
if state[1] ~= 'running' then
  return 0
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
if state[2] and state[2] ~= ARGV[1] and tonumber(state[3] or 0) > now then
  return 0
end

local lease = tonumber(ARGV[2])
local expires = now + lease
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_expires_at', expires)
-- The keys outlive the lease, so cleanup finds the job before it vanishes.
local ttl = math.max(tonumber(ARGV[3]), lease)
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return {expires, state[4]}
