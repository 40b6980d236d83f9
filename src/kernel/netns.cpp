// Network namespace files: opened and checked to be a network namespace other than portpub's
// own, their paths made canonical for the records, and a scoped entry into one for this thread
// that aborts the process rather than stay in the wrong namespace.
#include "portpub/netns.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "portpub/error.hpp"

namespace portpub {

namespace {

const char* ns_type_name(int type) {
    switch (type) {
        case CLONE_NEWNS:
            return "a mount";
        case CLONE_NEWUTS:
            return "a UTS";
        case CLONE_NEWIPC:
            return "an IPC";
        case CLONE_NEWUSER:
            return "a user";
        case CLONE_NEWPID:
            return "a PID";
        case CLONE_NEWCGROUP:
            return "a cgroup";
        case CLONE_NEWTIME:
            return "a time";
        default:
            return "another kind of";
    }
}

}  // namespace

std::string normalize_netns_path(const std::string& path) {
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    return ec ? path : p.string();
}

Netns Netns::open(const std::string& given) {
    if (given.empty())
        throw Error(
            "the network namespace path is empty; give the namespace file, as in "
            "--netns /run/netns/web or /proc/PID/ns/net");
    Netns ns;
    ns.path_ = normalize_netns_path(given);
    const std::string name = shown(given);  // as messages quote it
    int fd = ::open(given.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            throw Error("network namespace " + name +
                        " does not exist; create it (ip netns add NAME makes /run/netns/NAME) or "
                        "pass a container's /proc/PID/ns/net");
        throw_errno("cannot open network namespace " + name, err);
    }
    ns.fd_.reset(fd);
    int type = ::ioctl(fd, NS_GET_NSTYPE);
    if (type < 0)
        throw Error(name +
                    " is not a namespace file; pass a network namespace such as "
                    "/run/netns/NAME or /proc/PID/ns/net");
    if (type != CLONE_NEWNET)
        throw Error(
            name + " is " + ns_type_name(type) +
            " namespace, not a network namespace; pass /run/netns/NAME or /proc/PID/ns/net");
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("cannot stat " + name);
    ns.inode_ = st.st_ino;
    struct stat self {};
    if (::stat("/proc/self/ns/net", &self) == 0 && self.st_ino == st.st_ino &&
        self.st_dev == st.st_dev)
        throw Error(name + " is portpub's own network namespace; pass the container's namespace");
    return ns;
}

NetnsSwitch::NetnsSwitch(int target_fd) {
    saved_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!saved_) throw_errno("cannot open the current network namespace");
    if (::setns(target_fd, CLONE_NEWNET) != 0) throw_errno("cannot enter network namespace");
}

NetnsSwitch::~NetnsSwitch() {
    if (::setns(saved_.get(), CLONE_NEWNET) != 0) {
        std::perror("portpub: cannot return to the original network namespace");
        std::abort();
    }
}

}  // namespace portpub
