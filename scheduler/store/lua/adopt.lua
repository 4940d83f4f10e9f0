-- A new leader reads the watermark of each job, starting new jobs (or unreadable ones) at now.
-- KEYS[1] lease, KEYS[2] watermarks hash
-- ARGV[1] our lease value, ARGV[2] now (epoch s), ARGV[3..] job names
-- Returns {0} when the lease is not ours, else {1, w1, f1, w2, f2, ...}: the watermark of each
-- job and a flag: 0 existing, 1 started now (no watermark), 2 reset now (unreadable value).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
local out = {1}
for i = 3, #ARGV do
  local job = ARGV[i]
  local raw = redis.call('HGET', KEYS[2], job)
  local mark = raw and tonumber(raw)
  local flag = 0
  if not raw then
    flag = 1
  elseif not mark or mark ~= math.floor(mark) then
    flag = 2
  end
  if flag ~= 0 then
    mark = tonumber(ARGV[2])
    redis.call('HSET', KEYS[2], job, ARGV[2])
  end
  out[#out + 1] = string.format('%d', mark)
  out[#out + 1] = flag
end
return out
