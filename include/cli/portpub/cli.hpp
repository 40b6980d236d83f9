// The command line. Exceptions stop here: one line on stderr, non-zero exit.
#pragma once

namespace portpub {

// Exit status: 0 success, 1 failure, 2 usage error.
int run_cli(int argc, char** argv);

}  // namespace portpub
