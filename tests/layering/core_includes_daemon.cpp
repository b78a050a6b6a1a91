// Deliberately against the layering: `core` (a low layer) including a
// `daemon` header. Built only by the build.layering test, which expects the
// compiler to fail to find the header (cmake/SsbLayers.cmake).
#include "ssb/core/request.hpp"
#include "ssb/daemon/pool.hpp"

int ssb_layering_probe() { return 0; }
