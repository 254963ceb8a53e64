-- wrk script: GET by default (with BENCH_IF_NONE_MATCH set, a conditional GET carrying
-- that If-None-Match); with BENCH_BASIC set, POST a form authenticated by
-- client_secret_basic: BENCH_BODY when set (e.g. an introspection request, RFC 7662),
-- else a client_credentials token request; with BENCH_BODIES set too, the next line of that
-- file for each request (single-use grants: one code or refresh token per request; after
-- the last line it starts over, and the reused ones are refused and counted). With
-- BENCH_HEADER_LINES set, each request also carries the next "Name: value" line of that file
-- as a header (single-use headers: one DPoP proof per request, RFC 9449; it starts over
-- after the last line too). Counts every response whose status is not
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

local header_lines = {}
local next_header = 1
local header_file = os.getenv("BENCH_HEADER_LINES")
if header_file and header_file ~= "" then
    for line in io.lines(header_file) do
        local name, value = string.match(line, "^([^:]+):%s*(.*)$")
        if name then
            table.insert(header_lines, { name, value })
        end
    end
end

-- The request's headers: wrk's own (Host, Authorization, ...) and the next line's header.
local function headers_with_next_line()
    local headers = {}
    for name, value in pairs(wrk.headers) do
        headers[name] = value
    end
    local line = header_lines[next_header]
    next_header = next_header % #header_lines + 1
    headers[line[1]] = line[2]
    return headers
end

if #bodies > 0 or #header_lines > 0 then
    function request()
        local body = nil
        if #bodies > 0 then
            body = bodies[next_body]
            next_body = next_body % #bodies + 1
        end
        local headers = nil
        if #header_lines > 0 then
            headers = headers_with_next_line()
        end
        return wrk.format(nil, nil, headers, body)
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
