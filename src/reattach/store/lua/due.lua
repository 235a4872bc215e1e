-- The members of an index sorted set whose score (a lease expiry) has passed,
-- by the server's clock.
-- KEYS: index
local time = redis.call('TIME')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',
  time[1] * 1000 + math.floor(time[2] / 1000))
