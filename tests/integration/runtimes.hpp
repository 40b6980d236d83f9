// The real container runtimes of Debian 12 (runc, crun, Podman) confined to a
// Lab: a busybox root filesystem, Podman with its storage and configuration in
// the lab's directory, and an HTTP fetch from one of the lab's namespaces.
// Shared by the runtime tests and the start-to-served benchmark.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "lab.hpp"

namespace lab::runtimes {

nlohmann::json read_json(const std::filesystem::path& path);  // throws when unreadable
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);  // "" when unreadable

// The lab's own directory on its private /run.
std::filesystem::path lab_dir(const Lab& lab);

// DIR/rootfs: busybox (and the libraries it needs, if it is not the static
// build) with /www/index.html holding `page`.
std::filesystem::path make_rootfs(const std::filesystem::path& dir, const std::string& page);

// The page over HTTP (curl), fetched from namespace `from` ("host" or "ext").
// A runtime returns once the container's process runs, maybe before httpd
// listens: a failed fetch is tried again, `tries` times 100 ms apart.
// "(failed ...)" when none succeeded.
std::string fetch(const std::string& from, const std::string& ip, int port, int tries = 20);

// Runs argv with stdin on /dev/null and its output appended to `log`: a
// container started detached keeps the runtime's stdio, and must not keep
// the caller's pipes. Returns the exit status.
int run_logged(const std::vector<std::string>& argv, const std::filesystem::path& log,
               const std::vector<std::pair<std::string, std::string>>& env = {});

// A hook of the repository's files, pointed at the built portpub and the
// lab's state directory.
void point_at_build(nlohmann::json& hook, const Lab& lab);

// crun refuses a cgroup v1 host whose cgroup2 mount holds a controller
// ("hybrid mode"). Unmounting that cgroup2 in the test's private mount
// namespace leaves plain v1, as on older hosts; the host never sees it.
void hide_hybrid_cgroup2();

// containers.conf's [network] table for Podman's CNI backend with `conflist`
// as a network of its own (LAB/cni/net.d), and plugins from LAB/cni/bin
// (the built portpub) and then `more_plugin_dirs`.
std::string cni_network_conf(const Lab& lab, const nlohmann::json& conflist,
                             const std::vector<std::string>& more_plugin_dirs = {});

// Podman, rootful, confined to the lab: its storage, run root and
// configuration in the lab's directory; root filesystems given as --rootfs.
struct Podman {
    std::filesystem::path dir, conf, log;
    std::vector<std::string> global;

    // `extra_conf`: more of containers.conf (e.g. a [network] table).
    explicit Podman(const Lab& lab, const std::string& extra_conf = "");
    // `podman ARGS...`; its exit status.
    int operator()(std::vector<std::string> args) const;
    // The arguments of `podman run -d` of `httpd -p PORT` in `rootfs`, with
    // `options` before the root filesystem.
    std::vector<std::string> httpd_args(const std::string& name,
                                        const std::filesystem::path& rootfs,
                                        const std::vector<std::string>& options,
                                        int port = 80) const;
    // The same with a new root filesystem serving `page`; the exit status.
    int run_httpd(const std::string& name, const std::string& page,
                  const std::vector<std::string>& options, int port = 80) const;
};

// A real dockerd (Debian's docker.io) confined to a Lab: its data and
// configuration on tmpfs in the lab's mount namespace, its processes in a PID
// namespace of their own (killing the first kills them all), its containers'
// cgroups under a child cgroup this object makes and removes, and an image of
// busybox made with `docker import`. It ends with this object.
class Docker {
  public:
    explicit Docker(Lab& lab);
    ~Docker();
    Docker(const Docker&) = delete;
    Docker& operator=(const Docker&) = delete;

    // `docker ARGS...` against this daemon.
    RunResult cli(std::vector<std::string> args) const;
    // `docker run -d` of busybox httpd serving "docker\n" on port 80, with
    // `publish` as its -p ("8081:80"; "": nothing published); its id on
    // stdout. Throws with Docker's message when it fails.
    RunResult run_httpd(const std::string& publish) const;
    // The container's address on docker0.
    std::string address(const std::string& id) const;
    // The ids of the containers it runs.
    std::vector<std::string> containers() const;

  private:
    std::string socket() const { return run_ + "/docker.sock"; }
    Lab& lab_;
    std::string parent_, run_;
};

}  // namespace lab::runtimes
