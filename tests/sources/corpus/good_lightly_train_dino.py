# Correct: LightlyTrain runs DINO on a timm ViT-S/16 with 224 px global views.
import lightly_train

if __name__ == "__main__":
    lightly_train.train(
        out="out/dino_vits16",
        data="data/images",
        model="timm/vit_small_patch16_224",
        method="dino",
        epochs=100,
        batch_size=128,
        transform_args={"image_size": (224, 224)},
    )
