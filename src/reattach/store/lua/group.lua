-- Create or destroy a consumer group on a job's log.
-- KEYS: job, log
-- ARGV: 'create', start seq (-1: from the last seq on), group name
--    or 'destroy', ignored, group name
-- create returns 1 when made, 0 when the group existed; errors NOJOB, or
-- AHEAD <last seq>. destroy returns 1 when the group existed, else 0.
local group = ARGV[3]
if ARGV[1] == 'destroy' then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return 0
  end
  return redis.call('XGROUP', 'DESTROY', KEYS[2], group)
end

local last = redis.call('HGET', KEYS[1], 'last_seq')
if not last then
  return redis.error_reply('NOJOB')
end
local start = tonumber(ARGV[2])
if start == -1 then
  start = tonumber(last)
elseif start > tonumber(last) then
  return redis.error_reply('AHEAD ' .. last)
end
local made = redis.pcall('XGROUP', 'CREATE', KEYS[2], group, start .. '-0',
  'MKSTREAM')
if type(made) == 'table' and made.err then
  if string.find(made.err, 'BUSYGROUP', 1, true) then
    return 0
  end
  return made
end
-- MKSTREAM may have made the log: it lives as long as the record.
if redis.call('PTTL', KEYS[2]) == -1 then
  redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
end
return 1
