// A writer of the Prometheus text exposition format (version 0.0.4): HELP
// and TYPE lines, samples with escaped label values, histograms as
// cumulative _bucket{le=...} series ending at +Inf, then _sum and _count.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssb/daemon/stats.hpp"

namespace ssb::daemon {

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Starts a metric family: one HELP and one TYPE line. `type` is
  // "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void histogram(std::string_view name, const Labels& labels, const Stats::Histogram& histogram);
  const std::string& text() const { return text_; }

  // Label values escape backslash, double quote and newline; HELP text
  // escapes backslash and newline (the format's rules).
  static std::string escape_label(std::string_view value);
  static std::string escape_help(std::string_view help);
  // Integers without a fraction, else the shortest exact form; +Inf, -Inf, NaN.
  static std::string number(double value);

 private:
  std::string text_;
};

}  // namespace ssb::daemon
