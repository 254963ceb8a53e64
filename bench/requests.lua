-- wrk script: GET by default (with BENCH_IF_NONE_MATCH set, a conditional GET carrying
-- that If-None-Match); with BENCH_BASIC set, POST a form authenticated by
-- client_secret_basic: BENCH_BODY when set (e.g. an introspection request, RFC 7662),
-- else a client_credentials token request; with BENCH_BODIES set too, the next line of that
-- file for each request (single-use grants: one code or refresh token per request; after
-- the last line it starts over, and the reused ones are refused and counted). Counts every response whose status is not
-- BENCH_STATUS (default 200), or, with BENCH_EXPECT set, whose body lacks that text, and
-- prints the count when the run ends ("bench-non-200: N", N the unexpected answers).

local basic = os.getenv("BENCH_BASIC")
if basic and basic ~= "" then
    wrk.method = "POST"
    wrk.headers["Authorization"] = "Basic " .. basic
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    local body = os.getenv("BENCH_BODY")
    if body and body ~= "" then
        wrk.body = body
    else
        wrk.body = "grant_type=client_credentials"
    end
end

local bodies = {}
local next_body = 1
local bodies_file = os.getenv("BENCH_BODIES")
if basic and basic ~= "" and bodies_file and bodies_file ~= "" then
    for line in io.lines(bodies_file) do
        if line ~= "" then
            table.insert(bodies, line)
        end
    end
end

if #bodies > 0 then
    function request()
        local body = bodies[next_body]
        next_body = next_body % #bodies + 1
        return wrk.format(nil, nil, nil, body)
    end
end

local if_none_match = os.getenv("BENCH_IF_NONE_MATCH")
if if_none_match and if_none_match ~= "" then
    wrk.headers["If-None-Match"] = if_none_match
end

local wanted = tonumber(os.getenv("BENCH_STATUS") or "") or 200

local expect = os.getenv("BENCH_EXPECT")
if expect == "" then
    expect = nil
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

non_200 = 0

function response(status, headers, body)
    if status ~= wanted or (expect and not string.find(body, expect, 1, true)) then
        non_200 = non_200 + 1
    end
end

function done(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do
        total = total + thread:get("non_200")
    end
    io.write(string.format("bench-non-200: %d\n", total))
end
