-- wrk script: POST an introspection request (RFC 7662) authenticated by client_secret_basic.
-- BENCH_BASIC holds the credentials, BENCH_BODY the form. Every answer that is not a 200
-- with "active":true counts as a failure, printed when the run ends ("bench-non-200: N").

wrk.method = "POST"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("BENCH_BODY")

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

non_200 = 0

function response(status, headers, body)
    if status ~= 200 or not string.find(body, '"active":true', 1, true) then
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
