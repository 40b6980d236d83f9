// Runs a fuzz target on the files it is given, as a libFuzzer binary does,
// without libFuzzer: the ordinary (gcc) build replays each seed corpus with it,
// so that the inputs that once found bugs stay tested where clang is absent.
//   NAME_fuzz_replay DIR|FILE...
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        if (fs::is_directory(argv[i])) {
            std::vector<fs::path> dir;
            for (const auto& e : fs::directory_iterator(argv[i]))
                if (e.is_regular_file()) dir.push_back(e.path());
            std::sort(dir.begin(), dir.end());  // the same order on every run
            files.insert(files.end(), dir.begin(), dir.end());
        } else {
            files.emplace_back(argv[i]);
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "cannot read %s\n", f.c_str());
            return 1;
        }
        const std::string bytes{std::istreambuf_iterator<char>(in), {}};
        // A bug aborts inside, after fuzz_check.hpp named it; the name of the
        // input comes first so that the report says which one.
        std::fprintf(stderr, "%s\n", f.c_str());
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("%zu inputs, no bug\n", files.size());
    return 0;
}
