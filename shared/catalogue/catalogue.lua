-- The catalogue's functions: appended to the queue's library (shared/functions.py), so they
-- load, persist and replicate with it. One catalogue per deployment; every key below
-- carries the hash tag {catalogue}, so all of them live in one Redis Cluster slot, and
-- every key a function touches comes in through KEYS.
--
--   records   hash: id -> title US artist US album US duration US <title words> US
--             <other words> US <extra columns, JSON>; the two word fields are the
--             normalised words (shared/catalogue/text.py), each after a GS: the title's
--             in order, then the artist's and album's that the title lacks
--   terms     zset, all scores 0: each distinct word of the catalogue once, so a word
--             prefix is one lexicographic range
--   postings  hash: word -> the ids of the tracks that have it, in byte order, each
--             between spaces (" id1 id2 ")
--   prefixes  hash: every prefix of a word (whole characters) -> the number of postings
--             of the words it starts, so a search knows a query word's entries at once
--   titles    zset, all scores 0: <title words> NUL <id>: titles that start with a query
--   plays     zset: id -> times played in this deployment
--   version   counter: bumped by every change of the tracks (nodes cache searches by it)
--   played    counter: bumped by every play counted in plays (nodes cache searches by it)
do
local US, GS, NUL, SP, TOP = '\31', '\29', '\0', ' ', '\255'
local MAX_ID = ${MAX_ID}

-- The two word fields of a record.
local function indexed(record)
  local start = 1
  for _ = 1, 4 do start = string.find(record, US, start, true) + 1 end
  local middle = string.find(record, US, start, true)
  local stop = string.find(record, US, middle + 1, true)
  return string.sub(record, start, middle - 1), string.sub(record, middle + 1, (stop or 0) - 1)
end

-- The title's words joined by spaces, as the titles index and a query's phrase have them.
local function phrase_of(title)
  return (string.gsub(string.sub(title, 2), GS, SP))
end

local function word_set(title, other)
  local set = {}
  for w in string.gmatch(title, '[^' .. GS .. ']+') do set[w] = true end
  for w in string.gmatch(other, '[^' .. GS .. ']+') do set[w] = true end
  return set
end

-- Whether every one of `wanted` (a word with a GS before it) is a word prefix in the
-- record: GS is in no title, artist, album or JSON, so a plain find sees the words only.
local function matches(record, wanted)
  for i = 1, #wanted do
    if not string.find(record, wanted[i], 1, true) then return false end
  end
  return true
end

-- a < b, byte by byte (Lua's < follows the locale; the indexes sort by bytes)
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A posting list with `id` in its place (binary search over the string: O(log n) finds,
-- one copy).
local function insert(list, id)
  local lo, hi = 1, #list  -- spaces: ids before lo are < id, ids after hi are > id
  while lo < hi do
    local s = string.find(list, SP, math.floor((lo + hi) / 2), true)
    if s == lo then s = string.find(list, SP, lo + 1, true) end
    local p = lo  -- the space before the id that ends at s
    local q = string.find(list, SP, math.max(lo, s - MAX_ID - 1), true)
    while q < s do p = q; q = string.find(list, SP, q + 1, true) end
    local other = string.sub(list, p + 1, s - 1)
    if other == id then return list end
    if before(id, other) then hi = p else lo = s end
  end
  return string.sub(list, 1, lo) .. id .. SP .. string.sub(list, lo + 1)
end

-- A word's postings are in chunks of at most CHUNK bytes, each a field of postings and a
-- member of terms: the word itself for the first, <word> NUL <its first id when made> for
-- the others, so a prefix's range of terms gives its entries in order, a chunk at a time,
-- and an update copies one chunk, never a whole long list.
local CHUNK = 2048

-- A batch's changes to one word's postings (`adds` sorted): `lists` caches the chunks
-- read (false: deleted), `dirty` lists those to write; terms follow at once. Reply: the
-- change in the word's number of postings.
local function repost(keys, word, adds, drops, lists, dirty)
  -- the word's chunks in order, and where an id belongs: the last whose first id is <= it
  local names = redis.call('ZRANGEBYLEX', keys[2], '[' .. word, '(' .. word .. NUL .. TOP)
  local function place(id)
    for k = #names, 2, -1 do
      if not before(id, string.sub(names[k], #word + 2)) then return k end
    end
    return 1
  end
  local function load(member)
    if lists[member] == nil then lists[member] = redis.call('HGET', keys[3], member) end
    return lists[member]
  end
  local function store(member, list)
    if not dirty[member] then dirty[member] = true; dirty[#dirty + 1] = member end
    lists[member] = list
  end
  local delta = 0
  for i = 1, #drops do
    local k = #names > 0 and place(drops[i])
    local list = k and load(names[k])
    local at = list and string.find(list, SP .. drops[i] .. SP, 1, true)
    if at then
      list = string.sub(list, 1, at) .. string.sub(list, at + #drops[i] + 2)
      delta = delta - 1
      if #list > 1 then
        store(names[k], list)
      elseif k > 1 or #names == 1 then
        store(names[k], false)
        redis.call('ZREM', keys[2], names[k])
        table.remove(names, k)
      else  -- the first chunk keeps the word's name: the second moves into it
        store(word, load(names[2]))
        store(names[2], false)
        redis.call('ZREM', keys[2], names[2])
        table.remove(names, 2)
      end
    end
  end
  local i = 1
  while i <= #adds do
    if #names == 0 then
      names[1] = word
      lists[word] = SP
      redis.call('ZADD', keys[2], 0, word)
    end
    local k = place(adds[i])
    local list = load(names[k])
    local bound = names[k + 1] and string.sub(names[k + 1], #word + 2)  -- ids from here go there
    local j = i
    while j < #adds and not (bound and not before(adds[j + 1], bound)) do j = j + 1 end
    local last = nil  -- the chunk's last id (the tail holds it whole)
    for id in string.gmatch(string.sub(list, -(MAX_ID + 2)), '[^ ]+') do last = id end
    if not last or before(last, adds[i]) then
      list = list .. table.concat(adds, SP, i, j) .. SP
      delta = delta + j - i + 1
    else
      for n = i, j do
        local longer = insert(list, adds[n])
        if #longer > #list then delta = delta + 1 end
        list = longer
      end
    end
    while #list > CHUNK do  -- split: the second half becomes a chunk of its own
      local at = string.find(list, SP, math.floor(#list / 2), true)
      local rest = string.sub(list, at)
      local name = word .. NUL .. string.sub(rest, 2, string.find(rest, SP, 2, true) - 1)
      redis.call('ZADD', keys[2], 0, name)
      table.insert(names, k + 1, name)
      store(names[k], string.sub(list, 1, at))
      k, list = k + 1, rest
    end
    store(names[k], list)
    i = j + 1
  end
  return delta
end

-- redis.call(command, key, <items>...) in slices: unpack is bounded by Lua's C stack.
local function call_many(command, key, items)
  local replies = {}
  for start = 1, #items, 4000 do
    local reply = redis.call(command, key, unpack(items, start, math.min(#items, start + 3999)))
    if type(reply) == 'table' then
      for i = 1, #reply do replies[#replies + 1] = reply[i] end
    end
  end
  return replies
end

-- Say that a catalogue's counters moved (its tracks, or a play counted), on the sharded
-- channel beside them ("<prefix>changes", the counter's key without its last name): nodes
-- that follow it answer kept searches without asking for the counters (see
-- shared/catalogue/__init__.py, Catalogue.follow). A staged catalogue's goes unheard.
local function changed(counter)
  redis.call('SPUBLISH', string.match(counter, '^(.*:)') .. 'changes', '1')
end

-- Add or update tracks in place: the index follows each one's record.
-- KEYS [1] records [2] terms [3] postings [4] prefixes [5] titles [6] version.
-- ARGV: id, record, id, record, ... Reply: {added, updated, unchanged}.
local function put(keys, args)
  local added, updated, same = 0, 0, 0
  local words, adds, drops = {}, {}, {}  -- the batch's words; word -> {id = true}
  local function touch(w)
    if not adds[w] then
      words[#words + 1] = w
      adds[w], drops[w] = {}, {}
    end
  end
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
        for w in pairs(word_set(old_title, old_other)) do
          if new[w] then
            new[w] = nil
          else
            touch(w)
            if adds[w][id] then adds[w][id] = nil else drops[w][id] = true end
          end
        end
        if old_title ~= title then
          redis.call('ZREM', keys[5], phrase_of(old_title) .. NUL .. id)
          redis.call('ZADD', keys[5], 0, phrase_of(title) .. NUL .. id)
        end
        updated = updated + 1
      else
        redis.call('ZADD', keys[5], 0, phrase_of(title) .. NUL .. id)
        added = added + 1
      end
      for w in pairs(new) do
        touch(w)
        if drops[w][id] then drops[w][id] = nil else adds[w][id] = true end
      end
      redis.call('HSET', keys[1], id, record)
    end
  end
  -- the batch's ids in byte order, ranked once, so a word's new ids sort by rank
  local batch, rank, sorted = {}, {}, true
  for i = 1, #args, 2 do
    if not rank[args[i]] then
      batch[#batch + 1] = args[i]
      rank[args[i]] = true
      if #batch > 1 and sorted then sorted = before(batch[#batch - 1], args[i]) end
    end
  end
  if not sorted then table.sort(batch, before) end
  for i = 1, #batch do rank[batch[i]] = i end
  local function by_rank(x, y) return rank[x] < rank[y] end
  local changes, lists, ads, drs = {}, {}, {}, {}
  for i = 1, #words do
    local w = words[i]
    local a, d = {}, {}
    for id in pairs(adds[w]) do a[#a + 1] = id end
    for id in pairs(drops[w]) do d[#d + 1] = id end
    if #a + #d > 0 then
      if #a > 1 then table.sort(a, by_rank) end
      changes[#changes + 1], ads[#changes + 1], drs[#changes + 1] = w, a, d
    end
  end
  if #changes == 0 then return {added, updated, same} end
  local lists, dirty, counts, prefixes = {}, {}, {}, {}
  for i = 1, #changes do
    local w = changes[i]
    local delta = repost(keys, w, ads[i], drs[i], lists, dirty)
    if delta ~= 0 then
      for n = 1, #w do
        local b = string.byte(w, n + 1)
        if not b or b < 128 or b > 191 then  -- a whole character
          local p = string.sub(w, 1, n)
          if not counts[p] then prefixes[#prefixes + 1], counts[p] = p, 0 end
          counts[p] = counts[p] + delta
        end
      end
    end
  end
  local set, gone = {}, {}
  for i = 1, #dirty do
    local member = dirty[i]
    if lists[member] then
      set[#set + 1], set[#set + 2] = member, lists[member]
    else
      gone[#gone + 1] = member
    end
  end
  if #set > 0 then call_many('HSET', keys[3], set) end
  if #gone > 0 then call_many('HDEL', keys[3], gone) end
  local had = call_many('HMGET', keys[4], prefixes)
  local keep, drop = {}, {}
  for i = 1, #prefixes do
    local n = (tonumber(had[i]) or 0) + counts[prefixes[i]]
    if n > 0 then
      keep[#keep + 1], keep[#keep + 2] = prefixes[i], n
    else
      drop[#drop + 1] = prefixes[i]
    end
  end
  if #keep > 0 then call_many('HSET', keys[4], keep) end
  if #drop > 0 then call_many('HDEL', keys[4], drop) end
  if added + updated > 0 then
    redis.call('INCR', keys[6])
    changed(keys[6])
  end
  return {added, updated, same}
end

-- The entries of a word prefix in index order (the words alphabetically, each one's ids in
-- byte order): a reader whose read(n) gives the next n ids, or fewer at the end.
local function entries(keys, prefix)
  local lists, at, offset, spent = {}, 1, 0, false
  local list, pos = nil, nil
  return function(n)
    local out = {}
    while #out < n do
      if list and pos < #list then
        local need = n - #out
        for id in string.gmatch(pos == 1 and list or string.sub(list, pos), '[^ ]+') do
          out[#out + 1] = id
          pos = pos + #id + 1
          need = need - 1
          if need == 0 then break end
        end
      elseif at <= #lists then
        list, pos = lists[at], 1
        at = at + 1
      elseif spent then
        break
      else
        local terms = redis.call('ZRANGEBYLEX', keys[2], '[' .. prefix, '(' .. prefix .. TOP,
                                 'LIMIT', offset, 4)
        offset = offset + #terms
        spent = #terms < 4
        lists, at = #terms > 0 and redis.call('HMGET', keys[3], unpack(terms)) or {}, 1
      end
    end
    return out
  end
end

-- The tracks whose title, artist or album has every word of the query as a word prefix,
-- best first: titles that are the query (tier 1), titles that start with it (tier 2), then
-- the rest (tier 3); within a tier the most played first, then in index order (titles, or
-- the matched word, alphabetically). Titles that are the query sort before the others
-- that start with it (NUL is the smallest byte), so index order is rank order among tracks
-- never played, and a search reads only what it may return:
--   * titles that start with the query: the first `limit` (`scan` when tracks were
--     played: a played title beyond the first page must still lead it);
--   * the rest, only when those do not fill the page: entries of the query's rarest word,
--     in chunks until the page is full, `scan` entries at most (each checked against the
--     query's other words);
--   * a range that had more to give makes the query broad: then the `top` most played
--     tracks of the deployment take part too (checked against the query), so that a
--     popular track is never lost behind the alphabet.
-- KEYS [1] records [2] terms [3] postings [4] prefixes [5] titles [6] plays [7] version
-- [8] played. ARGV [1] limit [2] scan [3] top [4] the query's words joined by spaces [5...]
-- its distinct words. Reply: the catalogue's version and played counters (what a node
-- caches the answer by), then id, record, plays, ... (at most `limit` tracks), then the
-- number of index entries of the rarest word.
local function search(keys, args)
  local limit, scan, top, phrase = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), args[4]
  local rarest, fewest = nil, nil
  local state = redis.call('MGET', keys[7], keys[8])
  local out = {state[1] or '0', state[2] or '0'}
  local counts = redis.call('HMGET', keys[4], unpack(args, 5))
  for i = 5, #args do
    local n = tonumber(counts[i - 4]) or 0
    if n == 0 then
      out[3] = 0
      return out
    end
    if fewest == nil or n < fewest then rarest, fewest = args[i], n end
  end
  local others, every = {}, {}
  for i = 5, #args do
    every[#every + 1] = GS .. args[i]
    if args[i] ~= rarest then others[#others + 1] = GS .. args[i] end
  end
  local tier, ids, records, unsure = {}, {}, {}, {}
  local function take(id, t, check)
    if tier[id] then return end
    tier[id] = t
    ids[#ids + 1] = id
    if check then unsure[#unsure + 1] = id end
  end
  -- (with plays, up to `scan` titles: the played among them lead their tier, and their
  -- times played are one ZMSCORE, no record read)
  local has_plays = redis.call('EXISTS', keys[6]) == 1
  local titled = redis.call('ZRANGEBYLEX', keys[5], '[' .. phrase, '(' .. phrase .. TOP,
                            'LIMIT', 0, has_plays and math.max(limit, scan) or limit)
  local broad = #titled >= limit
  for _, member in ipairs(titled) do
    local at = string.find(member, NUL, 1, true)
    take(string.sub(member, at + 1), at == #phrase + 1 and 1 or 2, false)
  end
  -- the rest, in chunks, until the page is full or `scan` entries were read
  local read = entries(keys, rarest)
  local offset, wanted = 0, limit
  while #ids < wanted and offset < scan do
    local chunk = math.min(scan - offset, #others > 0 and 2 * limit or wanted - #ids + #titled)
    local found = read(chunk)
    offset = offset + #found
    -- (an id is marked only once it matches: most candidates do not)
    local fresh = {}
    for i = 1, #found do
      if not tier[found[i]] then fresh[#fresh + 1] = found[i] end
    end
    if #others > 0 and #fresh > 0 then
      local got = redis.call('HMGET', keys[1], unpack(fresh))
      for i = 1, #fresh do
        local record = got[i]
        if record and matches(record, others) then
          local id = fresh[i]
          if not tier[id] then
            tier[id] = 3
            records[id] = record
            ids[#ids + 1] = id
          end
        end
      end
    else
      for i = 1, #fresh do
        local id = fresh[i]
        if not tier[id] then
          tier[id] = 3
          ids[#ids + 1] = id
        end
      end
    end
    if #found < chunk then break end
    if offset >= scan then broad = true end
  end
  if #ids >= wanted and offset < fewest then broad = true end
  local plays = {}
  if has_plays then
    if broad and top > 0 then
      local best = redis.call('ZREVRANGE', keys[6], 0, top - 1, 'WITHSCORES')
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
      local scores = redis.call('ZMSCORE', keys[6], unpack(ask))
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
      elseif tier[id] == 0 then  -- most played tracks: most match nothing, so check first
        if not matches(record, every) then
          tier[id] = nil
        else
          local title = phrase_of((indexed(record)))
          if title == phrase then tier[id] = 1
          elseif string.sub(title, 1, #phrase) == phrase then tier[id] = 2
          else tier[id] = 3 end
        end
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
        out[#out + 1] = plays[id] or 0
      end
    end
  end
  out[#out + 1] = fewest
  return out
end

-- Swap the staged catalogue in, in one step: the old one's keys are unlinked (freed in
-- the background), the staged ones renamed into their place.
-- KEYS [1] records [2] terms [3] postings [4] prefixes [5] titles [6...10] their staged
-- versions [11] version. Reply: tracks.
local function swap(keys, args)
  redis.call('UNLINK', keys[1], keys[2], keys[3], keys[4], keys[5])
  for i = 1, 5 do
    if redis.call('EXISTS', keys[i + 5]) == 1 then redis.call('RENAME', keys[i + 5], keys[i]) end
  end
  redis.call('INCR', keys[11])
  changed(keys[11])
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

-- A catalogue track started playing. KEYS [1] records [2] plays [3] played. ARGV [1] id.
-- Reply: its times played, or 0 for a track that is not in the catalogue.
local function played(keys, args)
  if redis.call('HEXISTS', keys[1], args[1]) == 0 then return 0 end
  redis.call('INCR', keys[3])
  changed(keys[3])
  return redis.call('ZINCRBY', keys[2], 1, args[1])
end

redis.register_function('catalogue_put_${VERSION}', put)
redis.register_function('catalogue_swap_${VERSION}', swap)
redis.register_function('catalogue_lock_${VERSION}', lock)
redis.register_function('catalogue_played_${VERSION}', played)
redis.register_function{function_name = 'catalogue_search_${VERSION}', callback = search,
                        flags = {'no-writes'}}
end
