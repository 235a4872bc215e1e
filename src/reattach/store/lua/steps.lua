-- Keep a job's run steps: for the running TTL, or as long as a finished record.
-- KEYS: job, steps
-- ARGV: run steps (JSON), running TTL (ms)
-- Error NOJOB when there is no such job.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return redis.error_reply('NOJOB')
end
local ttl = tonumber(ARGV[2])
if status ~= 'running' then
  ttl = redis.call('PTTL', KEYS[1])
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', math.max(ttl, 1))
return 1
