-- wrk script: GET by default; with BENCH_BASIC set, POST a form authenticated by
-- client_secret_basic: BENCH_BODY when set (e.g. an introspection request, RFC 7662),
-- else a client_credentials token request. Counts every response that is not 200, or,
-- with BENCH_EXPECT set, whose body lacks that text, and prints the count when the run
-- ends ("bench-non-200: N").

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

-- BENCH_IF_NONE_MATCH: send it as If-None-Match (a JWKS revalidation), and expect 304.
local if_none_match = os.getenv("BENCH_IF_NONE_MATCH")
local wanted = 200
if if_none_match and if_none_match ~= "" then
    wrk.headers["If-None-Match"] = if_none_match
    wanted = 304
end

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
