// jemalloc's start-up options, read from this symbol before the first
// allocation; MALLOC_CONF in the environment is applied after it.
//
// One arena: records are allocated on the replication thread and freed on
// librdkafka's threads, and with the default four arenas per CPU the memory
// freed on one thread is not reused by the next allocation on another. On the
// 1M-row benchmark one arena peaks at 47-52 MB against 71-78 MB with the
// default eight, at the same CPU per row (bench/RESULTS-relay-variants.md).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "narenas:1";
}
