// jemalloc's start-up options, read from this symbol before the first
// allocation; MALLOC_CONF in the environment is applied after it.
//
// One arena: records are allocated on the replication thread and freed on
// librdkafka's threads, and with the default four arenas per CPU the memory
// freed on one thread is not reused by the next allocation on another. With
// one arena the relay's peak RSS on the 1M-row benchmark drops from 56-74 MB
// to 48-49 MB and its CPU per row by 5-10 % (bench/RESULTS.md).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "narenas:1";
}
