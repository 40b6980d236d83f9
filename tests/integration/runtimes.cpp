// runc, crun and Podman confined to a Lab: a busybox root filesystem serving a page, Podman's
// storage and configuration in the lab's directory, hooks and CNI configuration pointed at the
// built portpub, and the page fetched with curl from one of the lab's namespaces.
#include "runtimes.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace lab::runtimes {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return json::parse(in);
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

fs::path lab_dir(const Lab& lab) {
    return fs::path(lab.state_dir()).parent_path();
}

fs::path make_rootfs(const fs::path& dir, const std::string& page) {
    const auto root = dir / "rootfs";
    for (const char* d : {"bin", "www", "proc", "dev", "sys", "etc", "tmp"})
        fs::create_directories(root / d);
    const std::string busybox = sh("command -v busybox | tr -d '\\n'");
    sh("cp " + busybox + " " + (root / "bin/busybox").string() + " && ln -s busybox " +
       (root / "bin/sh").string() + " && ln -s busybox " + (root / "bin/httpd").string() +
       " && { ldd " + busybox + " 2>/dev/null | grep -o '/[^ ]*' | xargs -r -I{} cp --parents {} " +
       root.string() + "; true; }");
    write_file(root / "www/index.html", page);
    return root;
}

std::string fetch(const std::string& from, const std::string& ip, int port, int tries) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "3",
                                     "http://" + ip + ":" + std::to_string(port) + "/"};
    if (from != "host") argv.insert(argv.begin(), {"ip", "netns", "exec", from});
    RunResult r;
    for (int i = 0; i < tries; ++i) {
        r = run(argv);
        if (r.status == 0) return r.out;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "(no page after " + std::to_string(tries) + " tries, each at most 3 s: status " +
           std::to_string(r.status) + ": " + r.err + ")";
}

int run_logged(const std::vector<std::string>& argv, const fs::path& log,
               const std::vector<std::pair<std::string, std::string>>& env) {
    return run(argv,
               [&] {
                   for (const auto& [k, v] : env)
                       ::setenv(k.c_str(), v.c_str(), 1);
                   int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                   int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                   ::dup2(null, 0);
                   ::dup2(fd, 1);
                   ::dup2(fd, 2);
               })
        .status;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void point_at_build(json& hook, const Lab& lab) {
    hook["path"] = PORTPUB_BIN;
    hook["args"].push_back("--state-dir");
    hook["args"].push_back(lab.state_dir());
}

void hide_hybrid_cgroup2() {
    if (fs::exists("/sys/fs/cgroup/unified/cgroup.controllers") &&
        !read_file("/sys/fs/cgroup/unified/cgroup.controllers").empty())
        ::umount2("/sys/fs/cgroup/unified", MNT_DETACH);
}

std::string cni_network_conf(const Lab& lab, const json& conflist,
                             const std::vector<std::string>& more_plugin_dirs) {
    const auto dir = lab_dir(lab) / "cni";
    fs::create_directories(dir / "bin");
    fs::create_directories(dir / "net.d");
    if (!fs::exists(dir / "bin/portpub")) fs::create_symlink(PORTPUB_BIN, dir / "bin/portpub");
    write_file(dir / "net.d" / (conflist.at("name").get<std::string>() + ".conflist"),
               conflist.dump());
    std::string plugin_dirs = "\"" + (dir / "bin").string() + "\"";
    for (const auto& d : more_plugin_dirs)
        plugin_dirs += ", \"" + d + "\"";
    return "[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"" +
           (dir / "net.d").string() + "\"\ncni_plugin_dirs = [" + plugin_dirs + "]\n";
}

Podman::Podman(const Lab& lab, const std::string& extra_conf) {
    dir = lab_dir(lab) / "podman";
    fs::create_directories(dir / "tmp");
    conf = dir / "containers.conf";
    log = dir / "log";
    write_file(conf,
               "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
               "tmp_dir = \"" +
                   (dir / "tmp").string() + "\"\n" + extra_conf);
    global = {"podman",
              "--root",
              (dir / "storage").string(),
              "--runroot",
              (dir / "runroot").string(),
              "--storage-driver",
              "vfs"};
}

int Podman::operator()(std::vector<std::string> args) const {
    args.insert(args.begin(), global.begin(), global.end());
    return run_logged(args, log, {{"CONTAINERS_CONF", conf.string()}});
}

std::vector<std::string> Podman::httpd_args(const std::string& name, const fs::path& rootfs,
                                            const std::vector<std::string>& options,
                                            int port) const {
    // This sandbox refuses the runtime's raising of RLIMIT_NOFILE and
    // RLIMIT_NPROC to Podman's defaults; lower values are always allowed.
    std::vector<std::string> args = {"run",       "-d",
                                     "--name",    name,
                                     "--ulimit",  "nofile=1024:1024",
                                     "--ulimit",  "nproc=1024:1024",
                                     "--runtime", "runc"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--rootfs", rootfs.string(), "/bin/httpd", "-f", "-p",
                             std::to_string(port), "-h", "/www"});
    return args;
}

int Podman::run_httpd(const std::string& name, const std::string& page,
                      const std::vector<std::string>& options, int port) const {
    return (*this)(httpd_args(name, make_rootfs(dir / name, page), options, port));
}

Docker::Docker(Lab& lab) : lab_(lab), parent_("portpub-test-" + std::to_string(::getpid())) {
    static int count = 0;
    run_ = "/run/portpub-test-docker-" + std::to_string(++count);
    sh("mkdir -p " + run_ +
       " /var/lib/docker /etc/docker && mount -t tmpfs portpub-test /var/lib/docker && "
       "mount -t tmpfs portpub-test /etc/docker");
    // Its own /proc too: containerd writes the oom_score_adj of its shims by their pid.
    // containerd's shims log at info level whatever dockerd's level: stderr goes too.
    lab.spawn("host", {"sh",
                       "-c",
                       "exec \"$@\" 2>/dev/null",
                       "sh",
                       "unshare",
                       "--pid",
                       "--fork",
                       "--kill-child",
                       "--mount-proc",
                       "dockerd",
                       "--log-level",
                       "error",
                       "--storage-driver",
                       "vfs",
                       "--cgroup-parent",
                       "/" + parent_,
                       "--exec-root",
                       run_ + "/exec",
                       "--pidfile",
                       run_ + "/docker.pid",
                       "-H",
                       "unix://" + socket()});
    wait_until("dockerd to answer", 30000, [&] { return cli({"info"}).status == 0; });
    const auto rootfs = make_rootfs(run_ + "/image", "docker\n");
    sh("tar -C " + rootfs.string() + " -c . | docker -H unix://" + socket() +
       " import - portpub-test-busybox >/dev/null");
}

Docker::~Docker() {
    lab_.kill_servers("host");
    try {
        // Its containers' cgroups, empty once their processes are gone.
        const std::string dirs = "/sys/fs/cgroup/*/" + parent_ + " /sys/fs/cgroup/" + parent_;
        wait_until("docker's cgroups to empty", 10000, [&] {
            return run({"sh", "-c",
                        "for d in " + dirs +
                            "; do [ -d $d ] && find $d -depth -type d -exec rmdir {} + ; done; "
                            "for d in " +
                            dirs + "; do [ -e $d ] && exit 1; done; exit 0"})
                       .status == 0;
        });
        sh("umount /var/lib/docker /etc/docker; rm -rf " + run_);
    } catch (const std::exception& e) {
        std::cerr << "docker clean-up: " << e.what() << "\n";
    }
}

RunResult Docker::cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"docker", "-H", "unix://" + socket()});
    return run(args);
}

RunResult Docker::run_httpd(const std::string& publish) const {
    std::vector<std::string> args{"run", "-d"};
    if (!publish.empty()) args.insert(args.end(), {"-p", publish});
    args.insert(args.end(), {"portpub-test-busybox", "/bin/httpd", "-f", "-p", "80", "-h", "/www"});
    auto r = cli(args);
    if (r.status != 0) throw std::runtime_error("docker run -p " + publish + ": " + r.err);
    return r;
}

std::string Docker::address(const std::string& id) const {
    auto r = cli({"inspect", "-f", "{{.NetworkSettings.IPAddress}}", id});
    if (r.status != 0) throw std::runtime_error("docker inspect " + id + ": " + r.err);
    return r.out.substr(0, r.out.find('\n'));
}

std::vector<std::string> Docker::containers() const {
    std::vector<std::string> ids;
    std::istringstream in(cli({"ps", "-q"}).out);
    for (std::string id; in >> id;)
        ids.push_back(id);
    return ids;
}

}  // namespace lab::runtimes
