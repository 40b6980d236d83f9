// The entry point: portpub is a CNI plugin when a runtime runs it with CNI_COMMAND set and no
// arguments, and the command line otherwise.
#include <iostream>

#include "portpub/cli.hpp"
#include "portpub/cni_plugin.hpp"

int main(int argc, char** argv) {
    // A CNI runtime runs its plugins with CNI_COMMAND set and no arguments
    // (the proxy that `up` starts inherits the variable, but has arguments).
    if (argc == 1 && portpub::cni_requested())
        return portpub::run_cni_plugin(std::cin, std::cout, std::cerr);
    return portpub::run_cli(argc, argv);
}
