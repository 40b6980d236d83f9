// portpub run by a CNI runtime: CNI_COMMAND in the environment, the network
// configuration on stdin, the result or the error JSON on stdout.
#pragma once

#include <iosfwd>

namespace portpub {

// True when the environment says a CNI runtime runs this process.
bool cni_requested();

// Carries out the CNI command; returns the exit status.
int run_cni_plugin(std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace portpub
