-- Shared opening of the fenced scripts that write several keys (scripts.py puts it where a
-- script says `--@fenced {types}`): check the type of every key before anything is read or
-- written, then the lease. KEYS[1] is always the lease, ARGV[1] our lease value; `wanted`
-- holds the type each key must have (or be absent).
-- Returns from the script {0} when the lease is not ours (a lease key of any other type is
-- not ours either), {2, key, type} when another key holds the wrong type.
local function fenced(wanted)
  for k = 1, #KEYS do
    local found = redis.call('TYPE', KEYS[k])['ok']
    if found ~= 'none' and found ~= wanted[k] then
      if k == 1 then
        return {0}
      end
      return {2, KEYS[k], found}
    end
  end
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return {0}
  end
  return nil
end
