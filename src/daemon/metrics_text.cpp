#include "ssb/daemon/metrics_text.hpp"

#include <fmt/format.h>

#include <cmath>

namespace ssb::daemon {

std::string MetricsText::escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string MetricsText::escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string MetricsText::number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<long long>(value));
  return fmt::format("{}", value);
}

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

void MetricsText::sample(std::string_view name, const Labels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      text_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escape_label(labels[i].second));
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += number(value);
  text_ += '\n';
}

void MetricsText::histogram(std::string_view name, const Labels& labels, const Stats::Histogram& histogram) {
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  auto with_le = [&labels](std::string le) {
    Labels l = labels;
    l.emplace_back("le", std::move(le));
    return l;
  };
  for (std::size_t i = 0; i < Stats::kBuckets.size(); ++i) {
    cumulative += histogram.buckets[i];
    sample(bucket, with_le(number(Stats::kBuckets[i])), static_cast<double>(cumulative));
  }
  // +Inf holds every observation, those beyond the last bound included.
  sample(bucket, with_le("+Inf"), static_cast<double>(histogram.count));
  sample(fmt::format("{}_sum", name), labels, histogram.sum);
  sample(fmt::format("{}_count", name), labels, static_cast<double>(histogram.count));
}

}  // namespace ssb::daemon
