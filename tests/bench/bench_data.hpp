// Machine-readable output of the benchmarks, for scripts/charts.gp: one
// whitespace-separated table a file, "#" comment lines first (what the
// benchmark measured, then the column names), one row a line. A figure that
// was not measured is "-" (gnuplot: set datafile missing "-"); text with
// spaces is quoted. Writes nothing when the path is empty (no --data given).
#pragma once

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// The median of the figures of a benchmark's runs; 0 for none.
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty()      ? 0
           : v.size() % 2 ? v[v.size() / 2]
                          : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

class DataFile {
  public:
    DataFile(const std::string& path, const std::string& comment,
             std::initializer_list<const char*> columns) {
        if (path.empty()) return;
        out_.open(path);
        if (!out_) throw std::runtime_error("cannot write " + path);
        out_ << "# " << comment << "\n#";
        for (const char* c : columns)
            out_ << ' ' << c;
        out_ << '\n';
    }

    // One row; each cell is already text (see number(), missing(), quoted()).
    void row(std::initializer_list<std::string> cells) {
        if (!out_.is_open()) return;
        bool first = true;
        for (const auto& c : cells) {
            out_ << (first ? "" : " ") << c;
            first = false;
        }
        out_ << '\n' << std::flush;
    }

    static std::string number(double v, int digits = 3) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "%.*f", digits, v);
        return buf;
    }
    static std::string number(long v) { return std::to_string(v); }
    static std::string number(int v) { return std::to_string(v); }
    static std::string missing() { return "-"; }
    static std::string quoted(const std::string& text) { return '"' + text + '"'; }

  private:
    std::ofstream out_;
};

}  // namespace bench
