"""Behaviour unchanged: stores generated with a fixed seed hold the arrays the generator wrote before
the codebase-shape refactor (issue 12), byte for byte (sha256 of each array as zarr reads it).

If a deliberate change to the simulation changes these, regenerate the checksums and say so in the
change; an accidental one (a reordered floating-point sum, a drawn number moved) fails here.

Regenerated deliberately (issue 13): ``keypoints2d`` only. The detector model's confidence no longer falls
with the pixel error it has just drawn (it depends on occlusion, depth and image position); the random
draws and the (u, v) columns are unchanged, and every other array kept its checksum.

The cases name ``realism="ideal"`` since the generator's default became the realistic preset (issue 14): the
ideal preset is the one that must reproduce earlier stores bit for bit; "defaults" are the other arguments'.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import zarr

from simulator.generate import GenerationConfig, generate

CASES = {
    "defaults": dict(rooms=2, frames_per_room=2, subjects_per_room=1, max_order=1, seed=3, realism="ideal"),
    "co-located, recordings kept, ideal transducers, no multipath": dict(
        rooms=2, frames_per_room=2, subjects_per_room=1, max_order=1, seed=5, rig="co-located", keep_recordings=True,
        transducer_responses=False, multipath=False, kernel_samples=600, realism="ideal"),
}
SHA256 = {
    "defaults": {
        'activity': '2b804df2f4de145341e600c0af0a6418d45c16a633cfbb7f9738c40b6d183465',
        'age_years': 'ce252c1f7d100def8859d7ca356ba56c23f7c4babdb7702105bcb7a2b9861b8b',
        'cam_to_world': '7b0fc1ee1e3f8fefb00e548a4eb4651930c138ffbd03b156b75ea3ff8119c11b',
        'height': 'b398b968eb1fe2b2ee02ee865b252f1ca3e7223d40afb500a511a0c4581c710c',
        'intrinsics': 'c428f67a555bb96981e7d67232bbb0ca94b948b2adf66da86b0857ca8e1e0acd',
        'is_minor': 'df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119',
        'joints3d': 'd6fad2aaaf6723ac3a7254564de02f7c5b48ca5e0382531b6c79d57019c7aaf3',
        'kernel_scale': '4a762f198268408e01f9b4058006686bc574193c2cedd91abc12deba5282cd93',
        'kernels': '942231657e704df964cba3188937df931c2f21c53e4fb22da2c88e4045794b7e',
        'keypoints2d': '4d03819c4c384750b6c6aaf0f37ce501075ef8cadba241fd9acf9b2efaf9f120',
        'mic_pos': '1878d1238ab3420394153d41910be681f63e6a98cbb64861452407bd989e202c',
        'occluded': 'fdfac2592fca513b012efcffadb48a5811bad1606b91e4e7e79270fb98793100',
        'pair_index': 'a143c70c1e6a3e19b6b1dd20f04d42b0cf7bf20ca4ceaf809aeec42ac3e89119',
        'room_colocated': '9dcf97a184f32623d11a73124ceb99a5709b083721e878a16d78f596718ba7b2',
        'room_dimensions_m': '71a764fe788512dda36b5e6ad339baaeba8a17af065f66661872d669979b405f',
        'room_done': '9dcf97a184f32623d11a73124ceb99a5709b083721e878a16d78f596718ba7b2',
        'room_id': 'b342c83d7060c5852f741e8e009d375103df2e1f7c76fbc512e575cd86d7b03d',
        'room_impulse_responses': '6cc088d245d0a1a283d8df5e54874fe51254c71aad2db4cdb9e5df842f9022a3',
        'room_impulse_scale': '74d05247d50fcfbc8cf926d9278e8b954da63eb25be28686493d86b978f04e23',
        'room_relative_humidity_pct': '3c8446ab6089385999b7bf84445cf6d88c28ba6ff20190a1023d2e207dfcb3ba',
        'room_split': '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        'room_temperature_c': '5713bc97f8b3cf488c112afcb20c401eb4376b2a3ca9e07b44173cf2ab7f1d6d',
        'speaker_pos': '3b85db47480dd1b102dfb55e2cf5d1cffccecc1da84317ed37571cc393722320',
        'speed_of_sound': '815fd4703e4d597d939d6832bee89976cbbff09d0cdb25478139d50ba1984ee7',
        'split': 'df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119',
    },
    "co-located, recordings kept, ideal transducers, no multipath": {
        'activity': '598f25204643e8887121906c93a984931b309899c897034cc3588699b124850c',
        'age_years': '08b10937deda4c58fd32818e0a07020632f64a8873b3859f4d8f371ab4144a98',
        'cam_to_world': '6f0026b3188dc5da9134970c61a40b3a3101eebead8e36bd45d8f6ae89393c0b',
        'empty_recordings': '8cb0e742a8e3f7d7974f1df8636f29d6897f17044ca07a8c5e2ce83a436abe5b',
        'height': '388775be3754e2fa8c5567cdb5e08508fb2368e6a824893f933f26b58c83ab89',
        'intrinsics': 'c428f67a555bb96981e7d67232bbb0ca94b948b2adf66da86b0857ca8e1e0acd',
        'is_minor': '4afc7d98518180331a55e2f7b2d03f93c15d1c24afc976cdfb5737e02a190203',
        'joints3d': '2dd532db99e2906f5470159abd02afb2702c7b2d5223f8d850848db90bf5eb7d',
        'kernel_scale': 'ec7ec6503499217dc4fcca84f88b2d9cc7ce722d3271c49dc304be055e19b5e1',
        'kernels': '6bd709bdf0ce829a6f8d8241840ac56e2b44e6bbb853847acffd8b71df9a5e52',
        'keypoints2d': '4be9c51845e0a2a730013dc810b203228758b99386e8671774b572043bc88f91',
        'mic_pos': 'a313cb992ee4fe8a8783580909af9839fd2d2dd2a7d2362dad57584b70a75d96',
        'occluded': '53d1170ef00a51d81c9856a0fe92a0ac8394407d852746ad29cc9389bf3470d1',
        'pair_index': 'a143c70c1e6a3e19b6b1dd20f04d42b0cf7bf20ca4ceaf809aeec42ac3e89119',
        'pose_kernels_true': '5ff5515c567406fa21533e3fd00a01951298899c67cd22d9552b42496675b3a8',
        'recordings': 'e6b0335e955ad3c793825f8658da5feeb9ba8e296ad4fec406930e8d35316ad1',
        'room_colocated': '9dcf97a184f32623d11a73124ceb99a5709b083721e878a16d78f596718ba7b2',
        'room_dimensions_m': '224a7931f568eaff0299bda229048b78fd8edabb64f701667598eb7224e1bb2b',
        'room_done': '9dcf97a184f32623d11a73124ceb99a5709b083721e878a16d78f596718ba7b2',
        'room_id': 'b342c83d7060c5852f741e8e009d375103df2e1f7c76fbc512e575cd86d7b03d',
        'room_impulse_responses': '1902f488263c1ef029772700e9a0bb22e39ae6c40425831f27b1bcc7e561ae31',
        'room_impulse_scale': '1bf9c2620d3d60742ee54e7d9883c3a10c545fb71443075930538370e85f2963',
        'room_relative_humidity_pct': '0befa37125300e9a549ee8ac0fada2d3f95b00a0cb2a4d364c397171254056ef',
        'room_split': '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        'room_temperature_c': '6ee52a85270e23548435c587d0677a2d7b869cb034c441fe1e277cc9a45f1d90',
        'speaker_pos': '75f1e599a10a191d46cbecec6e148463327a37403e96f5e2d7fbfa84ff6a3658',
        'speed_of_sound': '7d41b1e9caa61594b50dfece655a4385fa7d30b2ec10a2d8524866a8316a5ace',
        'split': 'df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119',
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fixed_seed_writes_the_same_arrays_as_before(case, tmp_path, anny_model):
    out = str(tmp_path / "synth.zarr")
    summary = generate(GenerationConfig(**CASES[case]), out, workers=0, progress=False, body_model=anny_model)
    assert summary["rooms_done"] == 2
    root = zarr.open_group(out, mode="r")
    got = {name: hashlib.sha256(np.ascontiguousarray(array[...]).tobytes()).hexdigest()
            for name, array in root.arrays()}
    changed = sorted(name for name in set(got) | set(SHA256[case]) if got.get(name) != SHA256[case].get(name))
    assert not changed, f"arrays that differ from the recorded store: {changed}"
