"""Overlap accounting: disjoint atoms from record ids and from declared relations."""

from __future__ import annotations

import pytest

from frontload.allocate.fit import read_corpora
from frontload.allocate.paper import study_corpora
from frontload.allocate.pools import load_pools, pools_from_specs, pools_from_workspace, save_pools
from frontload.errors import ConfigError


def test_atoms_from_records(corpora_workspace):
    names = ["dldq", "dshq", "dlmq", "dalf"]
    pools = pools_from_workspace({n: corpora_workspace.corpus_dir(n) for n in names})
    members = {a.members: a for a in pools.atoms}
    assert set(members) == {
        frozenset({"dldq", "dlmq"}),
        frozenset({"dldq", "dlmq", "dalf"}),
        frozenset({"dshq", "dlmq"}),
    }
    assert members[frozenset({"dldq", "dlmq", "dalf"})].records == 12
    assert pools.corpus_tokens["dlmq"] == pools.corpus_tokens["dldq"] + pools.corpus_tokens["dshq"]
    for name in names:
        assert sum(pools.composition[name].values()) == pytest.approx(1.0)
    shq_atom = members[frozenset({"dshq", "dlmq"})]
    assert shq_atom.quality == pytest.approx(0.9, abs=1e-6)
    assert shq_atom.sft_index() > members[frozenset({"dldq", "dlmq"})].sft_index()


def test_atoms_from_declared_relations():
    pools = pools_from_specs(study_corpora())
    assert len(pools.atoms) == 3
    assert pools.corpus_tokens["lmq"] == pytest.approx(336e9 + 12.6e9)
    assert pools.corpus_tokens["alf"] == pytest.approx(30e9)
    alf_atom = next(a for a in pools.atoms if "alf" in a.members)
    assert alf_atom.members == {"alf", "ldq", "lmq"}


def test_unknown_relation_is_named():
    specs = study_corpora()
    specs["lmq"] = specs["lmq"].model_copy(update={"union": ["ldq", "nope"]})
    with pytest.raises(ConfigError, match="unknown corpus 'nope'"):
        pools_from_specs(specs)


def test_a_pools_file_keeps_the_pools_exactly(corpora_workspace, tmp_path):
    """The pools file `fl allocate experiments` writes reads back to the same atoms, numbers
    and compositions (so the ladder fits the same features from a CSV); --corpora takes it."""
    names = ["dldq", "dshq", "dlmq", "dalf"]
    pools = pools_from_workspace({n: corpora_workspace.corpus_dir(n) for n in names})
    path = save_pools(pools, tmp_path / "runs.pools.yaml")
    back = read_corpora(path)
    assert back.corpora == pools.corpora and back.atoms == pools.atoms
    assert back.corpus_tokens == pools.corpus_tokens and back.composition == pools.composition
    assert load_pools(path).atoms == pools.atoms
    bad = tmp_path / "bad.pools.yaml"
    bad.write_text(path.read_text().replace("- dalf\n", "", 1))  # dalf's atom, not listed
    with pytest.raises(ConfigError, match="atom of unknown corpus 'dalf'"):
        load_pools(bad)
