"""Buildsys tags: candidate → testing → release, declared in rdoinfo, applied to conveyor's
own tag store (or Koji), every change gated by dependency closure."""
