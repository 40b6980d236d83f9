#!/usr/bin/env bash
# README command: the Debian package, build/package/portpub_VERSION_ARCH.deb.
# Installs what is missing (scripts/setup.sh), builds (scripts/build.sh), then
# runs dpkg-buildpackage -b (debian/rules packages build/ as it is) in
# build/package/portpub-VERSION/: a copy of debian/ and links to the tree.
# dpkg-buildpackage writes its results to the parent directory, which is
# then build/package, not the one above this repository. lintian checks the
# package; any error or warning fails the command.
#   scripts/package.sh              set up, build, package
#   scripts/package.sh --no-build   package build/ as it is (the suite, which has just built it;
#       with --from, the tree's build/ is not built either)
#   scripts/package.sh --from REV   the package of commit REV of this repository: its
#       sources (git archive) in build/package-REV/, only the program built, and the
#       version VERSION~git.REV, lower than the tree's; packaged with REV's debian/,
#       or this tree's if REV has none. (The upgrade test installs it first.)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
die() { echo "package: $*" >&2; exit 2; }
no_build=0 from=""
while (($#)); do
  case $1 in
    --no-build) no_build=1; shift ;;
    --from) [[ -n ${2:-} ]] || die "--from takes a commit, like --from HEAD~1"; from=$2; shift 2 ;;
    *) die "unknown argument '$1' (see the comment at the top of scripts/package.sh)" ;;
  esac
done
scripts/setup.sh

if [[ -z $from ]]; then
  source=$top build=$top/build out=$top/build/package debian=$top/debian suffix=""
  ((no_build)) || scripts/build.sh
else
  rev=$(git rev-parse --verify --quiet --short "$from^{commit}") ||
    die "no commit '$from' in this repository (a shallow clone lacks history: git fetch --unshallow)"
  out=$top/build/package-$rev source=$top/build/package-$rev/source build=$top/build/package-$rev/build
  # (kept while it is REV's, so that its build is incremental)
  full=$(git rev-parse "$rev^{commit}")
  if [[ $(cat "$out/source.rev" 2>/dev/null) != "$full" ]]; then
    rm -rf "$source" "$build" && mkdir -p "$source"
    git archive "$rev" | tar -x -C "$source"
    echo "$full" >"$out/source.rev"
  fi
  debian=$source/debian
  [[ -d $debian ]] || debian=$top/debian
  suffix="~git.$rev"
  echo "package: building the program of $rev in $build"
  scripts/build.sh --binary-only "$source" "$build"
fi
[[ -x $build/portpub ]] || die "no $build/portpub: build it first (scripts/build.sh)"

# The version: debian/changelog's, whose upstream part must be CMake's.
version=$(dpkg-parsechangelog -l "$debian/changelog" -S Version)
project=$(sed -n 's/^project(portpub VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")
[[ ${version%%-*} == "$project" ]] ||
  die "debian/changelog says $version but CMakeLists.txt says $project: add a changelog entry"
version+=$suffix

# The directory dpkg-buildpackage runs in: debian/ copied (its build leaves
# files there), the rest links to the sources and the build.
stage=$out/portpub-$version
rm -rf "$out"/portpub-* "$out"/portpub_*
mkdir -p "$stage"
cp -a "$debian" "$stage/debian"
ln -s "$build" "$stage/build"
ln -s "$source/hooks" "$stage/hooks"
ln -s "$source/examples" "$stage/examples"
if [[ -n $suffix ]]; then
  # an entry on top of REV's changelog naming the commit it is built from
  { printf 'portpub (%s) unstable; urgency=medium\n\n  * Built from commit %s by scripts/package.sh --from.\n\n -- %s  %s\n\n' \
      "$version" "$rev" "$(dpkg-parsechangelog -l "$debian/changelog" -S Maintainer)" "$(date -R)"
    cat "$debian/changelog"; } >"$stage/debian/changelog"
fi
(cd "$stage" && dpkg-buildpackage -b --no-sign) >"$out/build.log" 2>&1 ||
  { tail -n 30 "$out/build.log" >&2; die "dpkg-buildpackage failed (whole log: $out/build.log)"; }
deb=$(echo "$out"/portpub_"${version#*:}"_*.deb)
[[ -f $deb ]] || die "dpkg-buildpackage made no $deb (log: $out/build.log)"
if [[ -z $suffix ]]; then
  lintian --fail-on error,warning --no-tag-display-limit "$deb" ||
    die "lintian found errors or warnings in $deb (above)"
fi
echo "package: $deb"
