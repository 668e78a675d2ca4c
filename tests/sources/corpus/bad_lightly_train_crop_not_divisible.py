# Mistake: LightlyTrain's global views of 225 px are not a multiple of the
# ViT-S/16's 16 px patches.
import lightly_train

if __name__ == "__main__":
    lightly_train.train(
        out="out/dino_vits16",
        data="data/images",
        model="timm/vit_small_patch16_224",
        method="dino",
        epochs=100,
        batch_size=128,
        transform_args={"image_size": (225, 225)},  # expect: DG301
    )
