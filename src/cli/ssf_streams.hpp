// The SSF streams of `serve` and `tessera ssf`: <data_dir>/ssf_streams.json
// (0600: it holds the receivers' push authorization), read-modify-written
// under the same kind of lock as the API keys file, reloaded by `serve`
// when it changes (docs/events.md "SSF").
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>

#include "server/options.hpp"
#include "tessera/clock.hpp"
#include "tessera/key_files.hpp"
#include "tessera/random.hpp"
#include "tessera/ssf.hpp"
#include "tessera/ulid.hpp"

namespace tessera::cli {

[[nodiscard]] Result<std::vector<SsfStream>> load_ssf_streams(const std::filesystem::path& file);

class FileSsfStreamStore final : public server::SsfStreamStore {
 public:
  // Reads the file (absent: no streams) into `live`.
  [[nodiscard]] static Result<std::unique_ptr<FileSsfStreamStore>> open(std::filesystem::path file,
                                                                        SsfStreams& live,
                                                                        const Clock& clock,
                                                                        Random& random);

  std::shared_ptr<const std::vector<SsfStream>> list() const override { return live_.get(); }
  Result<SsfStream> create(SsfStream stream) override;
  Result<bool> remove(std::string_view stream_id) override;
  // Re-reads the file when it changed (another process: `tessera ssf`).
  void reload_if_changed();

 private:
  FileSsfStreamStore(std::filesystem::path file, SsfStreams& live, const Clock& clock,
                     Random& random)
      : file_(std::move(file)), live_(live), clock_(clock), ids_(clock, random) {}
  std::filesystem::path file_;
  SsfStreams& live_;
  const Clock& clock_;
  std::mutex mu_;  // one writer at a time in this process; guards ids_ and stamp_
  UlidGenerator ids_;
  std::optional<FileStamp> stamp_;
};

}  // namespace tessera::cli
