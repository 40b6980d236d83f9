#!/usr/bin/env bash
# README command: the Debian package, build/package/portpub_VERSION_ARCH.deb.
# Installs what building and packaging need (scripts/setup.sh --package),
# builds (scripts/build.sh), then runs dpkg-buildpackage -b (debian/rules
# packages build/ as it is) in build/package/portpub-VERSION/: a copy of
# debian/ and links to the tree. dpkg-buildpackage writes its results to the
# parent directory, which is then build/package, not the one above this
# repository. lintian checks the package; any error or warning fails the
# command.
#   scripts/package.sh              set up, build, package
#   scripts/package.sh --no-build   package build/ as it is, installing nothing (the
#       suite, which has just built it; dpkg-buildpackage names what is missing)
#   scripts/package.sh --from REV   the package of commit REV of this repository, in
#       build/package-from/: REV's sources (git archive), only the program built, at
#       version VERSION~git.REV, lower than the tree's; packaged with REV's debian/,
#       or this tree's if REV has none. REV "previous" is HEAD~1, or HEAD when the
#       tree has changes not committed: the version before this one. (The upgrade
#       test installs it, then this tree's package over it.) The tree's build/ is
#       not built; with --no-build, nothing is installed. Exit status 3: there is
#       no such commit.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
die() { echo "package: $*" >&2; exit 2; }
no_build=0 from=""
while (($#)); do
  case $1 in
    --no-build) no_build=1; shift ;;
    --from) [[ -n ${2:-} ]] || die "--from takes a commit, like --from previous or --from HEAD~1"
      from=$2; shift 2 ;;
    *) die "unknown argument '$1' (see the comment at the top of scripts/package.sh)" ;;
  esac
done
((no_build)) || scripts/setup.sh --package

if [[ -z $from ]]; then
  source=$top build=$top/build out=$top/build/package debian=$top/debian suffix=""
  ((no_build)) || scripts/build.sh
else
  if [[ $from == previous ]]; then
    from=HEAD~1
    git diff --quiet HEAD -- 2>/dev/null || from=HEAD
  fi
  rev=$(git rev-parse --verify --quiet --short "$from^{commit}") || {
    echo "package: no commit '$from' in this repository (a shallow clone lacks history: git fetch --unshallow)" >&2
    exit 3
  }
  out=$top/build/package-from source=$top/build/package-from/source build=$top/build/package-from/build
  # (kept while it is REV's, so that its build is incremental)
  full=$(git rev-parse "$rev^{commit}")
  if [[ $(cat "$out/source.rev" 2>/dev/null) != "$full" ]]; then
    rm -rf "$out" && mkdir -p "$source"
    git archive "$rev" | tar -x -C "$source"
    echo "$full" >"$out/source.rev"
  fi
  debian=$source/debian
  [[ -d $debian ]] || debian=$top/debian
  suffix="~git.$rev"
  echo "package: building the program of $rev in $build (log: $out/program.log)"
  scripts/build.sh --binary-only "$source" "$build" >"$out/program.log" 2>&1 ||
    { tail -n 30 "$out/program.log" >&2; die "the build of $rev failed (whole log: $out/program.log)"; }
fi
[[ -x $build/portpub ]] || die "no $build/portpub: build it first (scripts/build.sh)"

# The version: debian/changelog's, whose upstream part must be CMake's.
version=$(dpkg-parsechangelog -l "$debian/changelog" -S Version)
project=$(sed -n 's/^project(portpub VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")
[[ ${version%%-*} == "$project" ]] ||
  die "debian/changelog says $version but CMakeLists.txt says $project: add a changelog entry"

# The directory dpkg-buildpackage runs in: debian/ copied (its build leaves
# files there), the rest links to the sources and the build.
stage=$out/portpub-$version$suffix
rm -rf "$out"/portpub-* "$out"/portpub_*
mkdir -p "$stage"
cp -a "$debian" "$stage/debian"
ln -s "$build" "$stage/build"
ln -s "$source/hooks" "$stage/hooks"
ln -s "$source/examples" "$stage/examples"
if [[ -n $suffix ]]; then
  # The top entry's version, lowered below the release it precedes; the
  # entry says which commit the package is built from.
  sed -i "1s/(\([^)]*\))/(\1$suffix)/; 3i\\  * Built from commit $rev by scripts/package.sh --from." \
    "$stage/debian/changelog"
  version+=$suffix
fi
(cd "$stage" && dpkg-buildpackage -b --no-sign) >"$out/build.log" 2>&1 ||
  { tail -n 30 "$out/build.log" >&2; die "dpkg-buildpackage failed (whole log: $out/build.log)"; }
deb=$(echo "$out"/portpub_"${version#*:}"_*.deb)
[[ -f $deb ]] || die "dpkg-buildpackage made no $deb (log: $out/build.log)"
if [[ -z $suffix ]]; then
  # (lintian's note that it runs as root left out)
  lint=0
  report=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2>&1) || lint=$?
  grep -v 'running with root privileges' <<<"$report" || true
  ((lint == 0)) || die "lintian found errors or warnings in $deb (above)"
fi
echo "package: $deb"
