#include "portpub/cli.hpp"

int main(int argc, char** argv) {
    return portpub::run_cli(argc, argv);
}
