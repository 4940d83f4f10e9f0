#!lua
-- A new leader reads the watermark of each job, starting new jobs (or unreadable ones) at now.
-- KEYS[1] lease, KEYS[2] watermarks hash, KEYS[3] missed stream
-- ARGV[1] our lease value, ARGV[2] now (epoch s, the leader's clock), ARGV[3] how far (s) a
-- slot may be ahead of Redis TIME: the allowed clock offset, ARGV[4] stream cap,
-- ARGV[5..] job names.
-- A watermark is a slot: an integer in [0, TIME + offset]. Anything else is unreadable: the
-- job restarts from now, and the reset is recorded in the missed stream (count 0: which
-- slots were missed is unknown) with what was found.
-- Returns {0} when the lease is not ours; {2, key, type} when a key holds the wrong type;
-- {3, time} when `now` is later than Redis TIME plus the offset (the leader's clock stepped);
-- else {1, w1, f1, w2, f2, ...}: the watermark of each job and a flag: 0 existing,
-- 1 started now (no watermark), 2 reset now (not an integer), 3 reset now (out of range).
--@fenced
local unfit = fenced({'string', 'hash', 'stream'})
if unfit then
  return unfit
end
local server_s = tonumber(redis.call('TIME')[1])
local latest = server_s + tonumber(ARGV[3])
local now = ARGV[2]
if tonumber(now) > latest then
  return {3, server_s}
end
local out = {1}
for i = 5, #ARGV do
  local job = ARGV[i]
  local raw = redis.call('HGET', KEYS[2], job)
  local flag = 0
  if not raw then
    flag = 1
  elseif not string.match(raw, '^%d+$') or #raw > 15 then
    flag = 2
  elseif tonumber(raw) > latest then
    flag = 3
  end
  if flag == 0 then
    out[#out + 1] = raw
  else
    redis.call('HSET', KEYS[2], job, now)
    if flag ~= 1 then
      local reason = flag == 2 and 'watermark_unreadable' or 'watermark_out_of_range'
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'job', job, 'first', now,
        'last', now, 'count', '0', 'reason', reason, 'found', string.sub(raw, 1, 40))
    end
    out[#out + 1] = now
  end
  out[#out + 1] = flag
end
return out
