-- wrk -s bench/wrk_report.lua: print one machine-readable line at the end
-- (latencies in microseconds; non2xx = responses with a status >= 400,
-- wrk's own "status" error count).
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"non2xx":%d,"connect_err":%d,"read_err":%d,"write_err":%d,"timeout_err":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
end
