#include "ssb/daemon/connect_gate.hpp"

#include <thread>

namespace ssb::daemon {

ConnectGate::Turn::Turn(ConnectGate& gate) : gate_(gate), lock_(gate.mutex_) {
  const auto since = Clock::now() - gate_.last_success_;
  if (since < gate_.spacing_) std::this_thread::sleep_for(gate_.spacing_ - since);
}

}  // namespace ssb::daemon
