-- Delete everything stored for one job and tell its followers.
-- KEYS: job, log, steps, snap
-- ARGV: publish command, bell channel
-- Returns the job's user id, or false when there was no job.
local user = redis.call('HGET', KEYS[1], 'user_id')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if user then
  redis.call(ARGV[1], ARGV[2], 'gone')
end
return user
