// Linked into every executable of the sanitizer (SSB_SANITIZE) and fuzzer
// (SSB_FUZZ) builds, never into the product: the runtime options those
// builds need whoever starts them (scripts/test.sh, a suite that sets its
// own ASAN_OPTIONS, a developer running ctest by hand). ASAN_OPTIONS in the
// environment is read after this and wins for any flag it names.
//
// intercept_tls_get_addr=0: why. LeakSanitizer's exit-time check stops the
// process with a tracer thread that scans every thread's stack and TLS for
// pointers. The runtimes of GCC up to 13 and LLVM up to 16 (Debian 12 ships
// GCC 12 and clang 14) record a dynamically allocated TLS block in their
// __tls_get_addr interceptor and take a block whose address is 16 bytes past
// a page boundary to start with the header glibc 2.19 used to put there;
// they read that "header" for the block's start and size. Since glibc 2.25
// there is no such header, so when the allocator happens to place a block
// there the tracer scans a garbage range and dies ("Tracer caught signal 11:
// addr=0x7f8", pc inside __lsan::ScanRangeForPointers) before reporting
// anything. Where blocks land depends only on the sequence of allocations,
// so for a given command line it crashes every time: CI hit it twice in a
// row on the same direct submit (libssh and its libraries are dlopen'ed,
// which is where dynamic TLS comes from). Without the interceptor the
// tracer no longer scans dynamic TLS, which only those dlopen'ed libraries
// have; the bridge's own thread_locals live in static TLS, still scanned.
extern "C" const char* __asan_default_options();   // NOLINT(bugprone-reserved-identifier)
extern "C" const char* __asan_default_options() {  // NOLINT(bugprone-reserved-identifier)
  return "intercept_tls_get_addr=0";
}
