-- The catalogue's functions: appended to the queue's library (shared/functions.py), so they
-- load, persist and replicate with it. One catalogue per deployment; every key below
-- carries the hash tag {catalogue}, so all of them live in one Redis Cluster slot, and
-- every key a function touches comes in through KEYS.
--
--   records  hash: id -> title US artist US album US duration US <title words> US
--            <other words> US <extra columns, JSON>; the two word fields are the
--            normalised words (shared/catalogue/text.py) joined by spaces: the title's in
--            order, then the artist's and album's that the title lacks
--   words    zset, all scores 0: <word> NUL <id> for each distinct word of a track, so a
--            word prefix is one lexicographic range
--   titles   zset, all scores 0: <title words> NUL <id>: titles that start with a query
--   plays    zset: id -> times played in this deployment
--   version  counter: bumped by every change of the tracks (nodes cache searches by it)
do
local US, NUL, TOP = '\31', '\0', '\255'

-- The two word fields of a record.
local function indexed(record)
  local start = 1
  for _ = 1, 4 do start = string.find(record, US, start, true) + 1 end
  local middle = string.find(record, US, start, true)
  local stop = string.find(record, US, middle + 1, true)
  return string.sub(record, start, middle - 1), string.sub(record, middle + 1, (stop or 0) - 1)
end

local function word_set(title, other)
  local set = {}
  for w in string.gmatch(title, '%S+') do set[w] = true end
  for w in string.gmatch(other, '%S+') do set[w] = true end
  return set
end

-- Whether every word of `wanted` (each with a space before it) is a word prefix in the
-- record.
local function matches(record, wanted)
  local title, other = indexed(record)
  local hay = ' ' .. title .. ' ' .. other
  for i = 1, #wanted do
    if not string.find(hay, wanted[i], 1, true) then return false end
  end
  return true
end

-- Add or update tracks in place: each one's entries in words and titles follow its record.
-- KEYS [1] records [2] words [3] titles [4] version. ARGV: id, record, id, record, ...
-- Reply: {added, updated, unchanged}.
local function put(keys, args)
  local added, updated, same = 0, 0, 0
  for i = 1, #args, 2 do
    local id, record = args[i], args[i + 1]
    local old = redis.call('HGET', keys[1], id)
    if old == record then
      same = same + 1
    else
      local title, other = indexed(record)
      local new = word_set(title, other)
      if old then
        local old_title, old_other = indexed(old)
        local gone = {}
        for w in pairs(word_set(old_title, old_other)) do
          if new[w] then new[w] = nil else gone[#gone + 1] = w .. NUL .. id end
        end
        if #gone > 0 then redis.call('ZREM', keys[2], unpack(gone)) end
        if old_title ~= title then
          redis.call('ZREM', keys[3], old_title .. NUL .. id)
          redis.call('ZADD', keys[3], 0, title .. NUL .. id)
        end
        updated = updated + 1
      else
        redis.call('ZADD', keys[3], 0, title .. NUL .. id)
        added = added + 1
      end
      local members = {}
      for w in pairs(new) do
        members[#members + 1] = 0
        members[#members + 1] = w .. NUL .. id
      end
      if #members > 0 then redis.call('ZADD', keys[2], unpack(members)) end
      redis.call('HSET', keys[1], id, record)
    end
  end
  if added + updated > 0 then redis.call('INCR', keys[4]) end
  return {added, updated, same}
end

-- The tracks whose title, artist or album has every word of the query as a word prefix,
-- best first: titles that are the query (tier 1), titles that start with it (tier 2), then
-- the rest (tier 3); within a tier the most played first, then in index order (titles, or
-- the matched word, alphabetically). Titles that are the query sort before the others
-- that start with it (NUL is the smallest byte), so index order is rank order among tracks
-- never played, and a search reads only what it may return:
--   * titles that start with the query: the first `limit`;
--   * the rest, only when those do not fill the page: entries of the query's rarest word,
--     in chunks until the page is full, `scan` entries at most (each checked against the
--     query's other words);
--   * a range that had more to give makes the query broad: then the `top` most played
--     tracks of the deployment take part too (checked against the query), so that a
--     popular track is never lost behind the alphabet.
-- KEYS [1] records [2] words [3] titles [4] plays.
-- ARGV [1] limit [2] scan [3] top [4] the query's words joined by spaces [5...] its distinct
-- words. Reply: id, record, plays, ... (at most `limit` tracks), then the number of index
-- entries of the rarest word.
local function search(keys, args)
  local limit, scan, top, phrase = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), args[4]
  local rarest, fewest = nil, nil
  for i = 5, #args do
    local n = redis.call('ZLEXCOUNT', keys[2], '[' .. args[i], '(' .. args[i] .. TOP)
    if n == 0 then return {0} end
    if fewest == nil or n < fewest then rarest, fewest = args[i], n end
  end
  local others, every = {}, {}
  for i = 5, #args do
    every[#every + 1] = ' ' .. args[i]
    if args[i] ~= rarest then others[#others + 1] = ' ' .. args[i] end
  end
  local tier, ids, records, unsure = {}, {}, {}, {}
  local function take(id, t, check)
    if tier[id] then return end
    tier[id] = t
    ids[#ids + 1] = id
    if check then unsure[#unsure + 1] = id end
  end
  local titled = redis.call('ZRANGEBYLEX', keys[3], '[' .. phrase, '(' .. phrase .. TOP,
                            'LIMIT', 0, limit)
  local broad = #titled >= limit
  for _, member in ipairs(titled) do
    local at = string.find(member, NUL, 1, true)
    take(string.sub(member, at + 1), at == #phrase + 1 and 1 or 2, false)
  end
  -- the rest, in chunks, until the page is full or `scan` entries were read
  local offset, wanted = 0, limit
  while #ids < wanted and offset < scan do
    local chunk = math.min(scan - offset, #others > 0 and 2 * limit or wanted - #ids + #titled)
    local found = redis.call('ZRANGEBYLEX', keys[2], '[' .. rarest, '(' .. rarest .. TOP,
                             'LIMIT', offset, chunk)
    offset = offset + #found
    local fresh = {}
    for _, member in ipairs(found) do
      local id = string.sub(member, string.find(member, NUL, 1, true) + 1)
      if not tier[id] then
        tier[id] = 3
        fresh[#fresh + 1] = id
      end
    end
    if #others > 0 and #fresh > 0 then
      local got = redis.call('HMGET', keys[1], unpack(fresh))
      for i, id in ipairs(fresh) do
        if got[i] and matches(got[i], others) then
          records[id] = got[i]
          ids[#ids + 1] = id
        else
          tier[id] = nil
        end
      end
    else
      for _, id in ipairs(fresh) do ids[#ids + 1] = id end
    end
    if #found < chunk then break end
    if offset >= scan then broad = true end
  end
  if #ids >= wanted and offset < fewest then broad = true end
  local plays = {}
  if redis.call('EXISTS', keys[4]) == 1 then
    if broad and top > 0 then
      local best = redis.call('ZREVRANGE', keys[4], 0, top - 1, 'WITHSCORES')
      for i = 1, #best, 2 do
        plays[best[i]] = tonumber(best[i + 1])
        take(best[i], 0, true)  -- its tier is found from its record below
      end
    end
    local ask = {}
    for _, id in ipairs(ids) do
      if not plays[id] then ask[#ask + 1] = id end
    end
    if #ask > 0 then
      local scores = redis.call('ZMSCORE', keys[4], unpack(ask))
      for i, id in ipairs(ask) do
        if scores[i] then plays[id] = tonumber(scores[i]) end
      end
    end
  end
  if #unsure > 0 then
    local found = redis.call('HMGET', keys[1], unpack(unsure))
    for i, id in ipairs(unsure) do
      local record = found[i]
      if not record then
        tier[id] = nil
      elseif tier[id] == 0 then
        local title = indexed(record)
        if title == phrase then tier[id] = 1
        elseif string.sub(title, 1, #phrase) == phrase then tier[id] = 2
        elseif matches(record, every) then tier[id] = 3
        else tier[id] = nil end
      elseif not matches(record, others) then
        tier[id] = nil
      end
      if tier[id] then records[id] = record end
    end
  end
  -- by tier; within one, the played by their plays, then the rest in index order
  local order, chosen = {}, {}
  for i, id in ipairs(ids) do order[id] = i end
  local function more_played(a, b)
    if plays[a] ~= plays[b] then return plays[a] > plays[b] end
    return order[a] < order[b]
  end
  for t = 1, 3 do
    local hits, quiet = {}, {}
    for _, id in ipairs(ids) do
      if tier[id] == t then
        if plays[id] then hits[#hits + 1] = id else quiet[#quiet + 1] = id end
      end
    end
    table.sort(hits, more_played)
    for _, list in ipairs({hits, quiet}) do
      for _, id in ipairs(list) do
        if #chosen >= limit then break end
        chosen[#chosen + 1] = id
      end
    end
    if #chosen >= limit then break end
  end
  local out = {}
  if #chosen > 0 then
    local missing = {}
    for _, id in ipairs(chosen) do
      if not records[id] then missing[#missing + 1] = id end
    end
    if #missing > 0 then
      local found = redis.call('HMGET', keys[1], unpack(missing))
      for i, id in ipairs(missing) do records[id] = found[i] end
    end
    for _, id in ipairs(chosen) do
      if records[id] then
        out[#out + 1] = id
        out[#out + 1] = records[id]
        out[#out + 1] = string.format('%d', plays[id] or 0)
      end
    end
  end
  out[#out + 1] = fewest
  return out
end

-- Swap the staged catalogue in, in one step: the old one's keys are unlinked (freed in
-- the background), the staged ones renamed into their place.
-- KEYS [1] records [2] words [3] titles [4] [5] [6] their staged versions [7] version.
-- Reply: tracks.
local function swap(keys, args)
  redis.call('UNLINK', keys[1], keys[2], keys[3])
  for i = 1, 3 do
    if redis.call('EXISTS', keys[i + 3]) == 1 then redis.call('RENAME', keys[i + 3], keys[i]) end
  end
  redis.call('INCR', keys[7])
  return redis.call('HLEN', keys[1])
end

-- One import at a time. KEYS [1] lock. ARGV [1] the importer's token [2] ms to hold it
-- (0: let go). Reply: 1 if the token holds the lock now (or let it go), else 0.
local function lock(keys, args)
  local holder = redis.call('GET', keys[1])
  if holder and holder ~= args[1] then return 0 end
  if args[2] == '0' then
    redis.call('DEL', keys[1])
  else
    redis.call('SET', keys[1], args[1], 'PX', args[2])
  end
  return 1
end

-- A catalogue track started playing. KEYS [1] records [2] plays. ARGV [1] id.
-- Reply: its times played, or 0 for a track that is not in the catalogue.
local function played(keys, args)
  if redis.call('HEXISTS', keys[1], args[1]) == 0 then return 0 end
  return redis.call('ZINCRBY', keys[2], 1, args[1])
end

redis.register_function('catalogue_put_${VERSION}', put)
redis.register_function('catalogue_swap_${VERSION}', swap)
redis.register_function('catalogue_lock_${VERSION}', lock)
redis.register_function('catalogue_played_${VERSION}', played)
redis.register_function{function_name = 'catalogue_search_${VERSION}', callback = search,
                        flags = {'no-writes'}}
end
