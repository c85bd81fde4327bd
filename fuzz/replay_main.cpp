// Runs a fuzz target over files, so the targets build and run under GCC without libFuzzer:
// ctest replays each seed corpus through it, and a crasher can be replayed under a debugger.
//   <target>_replay <file-or-directory>...
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else {
      files.push_back(arg);
    }
  }
  // An empty corpus would make the ctest replay pass without running anything.
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s <file-or-directory>... (no input files found)\n", argv[0]);
    return 2;
  }
  for (const auto& file : files) run_file(file);
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
