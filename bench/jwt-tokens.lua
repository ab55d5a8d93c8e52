-- wrk script for the JWT scenario (bench/run.sh): each request carries the next token of the
-- file given after `--`, one token a line, so a file of distinct tokens makes every request a
-- new token and a file of one token makes every request the same. Past the last line it starts
-- over; done() prints how many requests were sent and how many tokens there were, so the run
-- can tell whether any token went twice.
-- `sent` and `count` are globals so done() can read them from the thread.
local tokens, threads = {}, {}
sent, count = 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then tokens[#tokens + 1] = "Bearer " .. line end
  end
  path = args[2] or "/items"
  count = #tokens
end

function request()
  sent = sent + 1
  return wrk.format("GET", path, { Authorization = tokens[(sent - 1) % count + 1] })
end

function done(summary, latency, requests)
  local total, available = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("sent")
    available = available + thread:get("count")
  end
  io.write(string.format("jwt-tokens: sent %d tokens %d\n", total, available))
end
