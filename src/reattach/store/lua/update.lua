-- Set and remove fields of an existing job record; never creates a record.
-- KEYS: job
-- ARGV: number of field, value pairs, the pairs, then the fields to remove
-- Error NOJOB when there is no such job.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOJOB')
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local pairs_end = 1 + 2 * tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'updated_at', now, unpack(ARGV, 2, pairs_end))
if #ARGV > pairs_end then
  redis.call('HDEL', KEYS[1], unpack(ARGV, pairs_end + 1))
end
return now
